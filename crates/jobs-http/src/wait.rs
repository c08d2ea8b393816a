//! Waiting instead of polling (RFC 7240 `Prefer: wait=N`), and the in-process notifier that
//! wakes held requests.
//!
//! A held request holds no database connection and no thread: it awaits a `watch` channel
//! (one per job being waited on, plus one for "a job became pending"), then reads once.
//! Whatever changes a job tells the [`Notifier`] after its write committed: the handlers,
//! and the sweeper through [`jobs_store::StoreObserver::job_written`]. Another process's
//! changes can be fed in through [`Notifier::job_id_changed`] and
//! [`Notifier::pending_added`] (for example from PostgreSQL `LISTEN`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use jobs_domain::{Job, JobId, JobStatus};
use tokio::sync::watch;
use tokio::time::Instant;

/// The default cap of `Prefer: wait`, in seconds.
pub const DEFAULT_MAX_WAIT_SECONDS: u64 = 60;

/// A wait a request asked for, already capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    /// Seconds to hold the request at most.
    pub seconds: u64,
}

impl Wait {
    /// How long to hold the request.
    pub fn duration(self) -> Duration {
        Duration::from_secs(self.seconds)
    }
}

/// The `Prefer: wait=N` of a request, capped at `max` seconds; `None` when it asks for no
/// wait (or waiting is switched off with a cap of 0).
pub fn requested(req: &HttpRequest, max: u64) -> Option<Wait> {
    if max == 0 {
        return None;
    }
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pref| {
            let (name, value) = pref.split_once('=')?;
            name.trim().eq_ignore_ascii_case("wait").then_some(value.trim().trim_matches('"'))
        })
        .find_map(|value| value.parse::<u64>().ok())
        .map(|seconds| Wait { seconds: seconds.min(max) })
}

/// Adds `Preference-Applied: wait=N` when a wait was honoured.
pub fn mark_applied(response: &mut HttpResponse, wait: Option<Wait>) {
    if let Some(wait) = wait {
        if let Ok(value) = HeaderValue::from_str(&format!("wait={}", wait.seconds)) {
            response.headers_mut().insert(HeaderName::from_static("preference-applied"), value);
        }
    }
}

/// Wakes requests held on a job or on new pending work. Cheap to share.
#[derive(Debug)]
pub struct Notifier {
    jobs: Mutex<HashMap<JobId, watch::Sender<()>>>,
    pending: watch::Sender<()>,
    closing: watch::Sender<bool>,
    /// Requests held right now (past their first read, waiting for a change).
    held: std::sync::atomic::AtomicUsize,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier {
            jobs: Mutex::new(HashMap::new()),
            pending: watch::channel(()).0,
            closing: watch::channel(false).0,
            held: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

/// A subscription to one job's changes; it removes the job's channel when the last one
/// goes.
#[derive(Debug)]
pub struct JobWatch {
    rx: Option<watch::Receiver<()>>,
    id: JobId,
    notifier: Arc<Notifier>,
}

impl Drop for JobWatch {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Ok(mut jobs) = self.notifier.jobs.lock() {
            if jobs.get(&self.id).is_some_and(|tx| tx.receiver_count() == 0) {
                jobs.remove(&self.id);
            }
        }
    }
}

impl Notifier {
    /// A new notifier, shared.
    pub fn new() -> Arc<Notifier> {
        Arc::new(Notifier::default())
    }

    /// Subscribes to changes of one job (subscribe before reading, so nothing is missed).
    pub fn watch_job(self: &Arc<Self>, id: JobId) -> JobWatch {
        let rx = match self.jobs.lock() {
            Ok(mut jobs) => {
                Some(jobs.entry(id).or_insert_with(|| watch::channel(()).0).subscribe())
            }
            Err(_) => None,
        };
        JobWatch { rx, id, notifier: self.clone() }
    }

    /// Subscribes to "a job became pending".
    pub fn pending_changes(&self) -> watch::Receiver<()> {
        self.pending.subscribe()
    }

    /// A job was written (after its commit): wakes its waiters, and claimers when it is
    /// pending now.
    pub fn job_changed(&self, job: &Job) {
        self.job_id_changed(job.id);
        if job.status == JobStatus::Pending {
            self.pending_added();
        }
    }

    /// A job changed or went away (also for changes seen through another process).
    pub fn job_id_changed(&self, id: JobId) {
        if let Ok(jobs) = self.jobs.lock() {
            if let Some(tx) = jobs.get(&id) {
                tx.send_replace(());
            }
        }
    }

    /// Wakes every held request to read its job again (and claimers to look again): after
    /// a gap in the change notices (the listener reconnected), any job may have changed.
    /// A request whose job did not change goes back to waiting.
    pub fn wake_all(&self) {
        if let Ok(jobs) = self.jobs.lock() {
            for tx in jobs.values() {
                tx.send_replace(());
            }
        }
        self.pending_added();
    }

    /// Some job became pending (also for changes seen through another process).
    pub fn pending_added(&self) {
        self.pending.send_replace(());
    }

    /// Answers every held request now (shutdown): waits end as if they timed out.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Whether the server is shutting down (held requests are being answered).
    pub fn is_closed(&self) -> bool {
        *self.closing.borrow()
    }

    /// How many requests are held right now, waiting for their job to change (metrics).
    pub fn held_requests(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many jobs are being waited on (for tests and metrics).
    pub fn watched_jobs(&self) -> usize {
        self.jobs.lock().map(|jobs| jobs.len()).unwrap_or(0)
    }
}

impl JobWatch {
    /// Waits for a change of the job until `deadline`: true on a change, false on timeout
    /// or shutdown.
    pub async fn changed(&mut self, deadline: Instant) -> bool {
        match self.rx.as_mut() {
            Some(rx) => {
                let notifier = self.notifier.clone();
                /// Counts a request as held while it waits, even if it is dropped meanwhile.
                struct Held<'a>(&'a std::sync::atomic::AtomicUsize);
                impl Drop for Held<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                notifier.held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _held = Held(&notifier.held);
                until_changed_ref(rx, deadline, &notifier).await
            }
            None => false,
        }
    }
}

async fn until_changed_ref(
    rx: &mut watch::Receiver<()>,
    deadline: Instant,
    notifier: &Notifier,
) -> bool {
    let mut closing = notifier.closing.subscribe();
    if *closing.borrow_and_update() {
        return false;
    }
    tokio::select! {
        changed = rx.changed() => changed.is_ok(),
        _ = tokio::time::sleep_until(deadline) => false,
        _ = closing.changed() => false,
    }
}

/// Waits on `rx` until it changes (true) or `deadline` passes or the server closes (false).
pub async fn until_changed(
    mut rx: watch::Receiver<()>,
    deadline: Instant,
    notifier: &Notifier,
) -> bool {
    until_changed_ref(&mut rx, deadline, notifier).await
}

/// Lets the store's own writes (the sweeper's expiries) wake waiters, and keeps the metrics.
pub struct NotifyingObserver {
    /// Where the store's counts go.
    pub metrics: Arc<crate::Metrics>,
    /// Who to wake.
    pub notifier: Arc<Notifier>,
}

impl jobs_store::StoreObserver for NotifyingObserver {
    fn job_created(&self) {
        self.metrics.job_created();
    }
    fn job_transitioned(&self, from: JobStatus, to: JobStatus) {
        self.metrics.job_transitioned(from, to);
    }
    fn job_written(&self, job: &Job) {
        self.notifier.job_changed(job);
    }
}

/// Closes the notifier on SIGTERM or SIGINT, so that held requests are answered (304 or
/// 204) while the server drains, instead of holding the shutdown up.
pub async fn close_on_signal(notifier: Arc<Notifier>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        notifier.close();
    }
    #[cfg(not(unix))]
    {
        let _ = notifier;
    }
}

/// How soon a held request reads again when a read after a wake-up found the database
/// unavailable.
const RETRY_READ: Duration = Duration::from_millis(100);

/// `GET /api/jobs/{job_id}`: the job with its ETag; 304 when `If-None-Match` names the
/// current ETag; with `Prefer: wait=N` as well, held until the job changes (200) or N
/// seconds pass (304). A job deleted meanwhile is 404.
pub(crate) async fn read_job(
    req: &HttpRequest,
    state: &crate::AppState,
    vis: jobs_domain::Visibility,
    id: JobId,
) -> Result<HttpResponse, crate::ApiError> {
    use crate::etag::{has_if_none_match, job_response, none_match_hits, not_modified};
    // Without If-None-Match there is nothing to wait for: the preference is ignored.
    let wait = if has_if_none_match(req) { requested(req, state.max_wait_seconds) } else { None };
    let deadline = wait.map(|w| Instant::now() + w.duration());
    // Subscribed before the first read, so that a change right after it still wakes us.
    let mut watch = wait.map(|_| state.notifier.watch_job(id));
    let mut woken = false;
    loop {
        let job = match state.get_job(&vis, id).await {
            Ok(job) => job,
            // A held request that was woken and finds the database unavailable (its pool
            // replacing connections after a reconnect, a statement timeout under a lock)
            // outlives the blip: it reads again every RETRY_READ until its wait ends, and
            // only then answers 503. (The first read answers 503 at once: nothing is held
            // yet, and the client retries as for any request.)
            Err(err) if woken && err.status().as_u16() == 503 => match deadline {
                Some(deadline) if Instant::now() + RETRY_READ < deadline => {
                    tokio::time::sleep(RETRY_READ).await;
                    continue;
                }
                _ => return Err(err),
            },
            Err(err) => return Err(err),
        };
        let mut response = if !none_match_hits(req, &job) {
            job_response(actix_web::http::StatusCode::OK, job)
        } else {
            let changed = match (watch.as_mut(), deadline) {
                (Some(w), Some(deadline)) => w.changed(deadline).await,
                _ => false,
            };
            if changed {
                woken = true;
                continue;
            }
            not_modified(&job)
        };
        mark_applied(&mut response, wait);
        return Ok(response);
    }
}
