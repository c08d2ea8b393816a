//! Background loops under supervision: a loop that panics (or returns, which it never
//! should) is logged, counted in `/metrics` and started again, so that it never silently
//! stops while the server keeps serving.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::BackgroundMetrics;

/// The wait before a stopped loop starts again: long enough not to spin on a loop that
/// fails at once, short enough that expiry and delivery barely notice.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs the loop `start` makes, and starts a new one each time it stops, until the runtime
/// shuts down. Must be called inside an actix (tokio) runtime.
pub async fn supervise<F, Fut>(
    task: &'static str,
    metrics: Arc<BackgroundMetrics>,
    delay: Duration,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    loop {
        match actix_web::rt::spawn(start()).await {
            Ok(()) => log::error!(target: "jobs::supervisor", "{task} stopped; starting it again"),
            Err(err) if err.is_panic() => {
                let payload = err.into_panic();
                let why = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                log::error!(target: "jobs::supervisor", "{task} panicked: {why}; starting it again");
            }
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        }
        metrics.background_restart(task);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn a_loop_that_panics_is_started_again_and_counted() {
        let metrics = Arc::new(BackgroundMetrics::register(&prometheus::Registry::new()).unwrap());
        let runs = Arc::new(AtomicU32::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (m, r) = (metrics.clone(), runs.clone());
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let start = move || {
                    let run = r.fetch_add(1, Ordering::SeqCst) + 1;
                    let tx = tx.clone();
                    async move {
                        if run < 3 {
                            panic!("sweep {run} failed");
                        }
                        let _ = tx.send(run);
                        std::future::pending::<()>().await;
                    }
                };
                supervise("sweeper", m, Duration::from_millis(1), start).await;
            });
        });
        let third = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(third, 3);
        assert_eq!(metrics.background_restarts("sweeper"), 2);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
