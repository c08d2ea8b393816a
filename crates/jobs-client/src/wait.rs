//! Waiting for a job to change instead of polling: `If-None-Match` with `Prefer: wait=N`.

use std::time::Duration;

use jobs_domain::JobId;
use reqwest::{Method, StatusCode};

use crate::error::{Error, Result};
use crate::transport::{read_job, Call};
use crate::{Client, Job};

/// The longest wait asked for in one request of [`Client::wait_until_finished`] (the
/// server caps it at its own `JOBS_MAX_WAIT_SECONDS`, 60 by default).
pub const WAIT_STEP: Duration = Duration::from_secs(60);

/// How long [`Client::wait_until_finished`] pauses between two reads when the server does
/// not hold requests (it runs with waiting switched off).
pub const POLL_WHEN_NOT_HELD: Duration = Duration::from_secs(1);

impl Client {
    /// Waits until the job differs from the version whose `ETag` is `etag`, for at most
    /// `wait` (`GET` with `If-None-Match` and `Prefer: wait=N`, N in whole seconds, at
    /// least 1).
    ///
    /// `Some(job)` (with its new `ETag`) as soon as it changes, or at once if it already
    /// has; `None` when `wait` passed without a change. The server caps the wait (60 s by
    /// default), so `None` may come sooner than asked. A job deleted meanwhile is an error
    /// ([`Error::is_not_found`]).
    pub async fn wait_for_change(
        &self,
        id: &JobId,
        etag: &str,
        wait: Duration,
    ) -> Result<Option<Job>> {
        Ok(self.held_get(id, etag, wait).await?.0)
    }

    /// The answer of a held `GET`, and whether the server held it
    /// (`Preference-Applied`).
    async fn held_get(
        &self,
        id: &JobId,
        etag: &str,
        wait: Duration,
    ) -> Result<(Option<Job>, bool)> {
        let url = self.url(&format!("/api/jobs/{id}"))?;
        let call = Call::new(self, Method::GET, url).header("if-none-match", etag)?;
        let call = call.prefer_wait(wait)?;
        let response = self.execute(&call).await?;
        let held = response.headers().contains_key("preference-applied");
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok((None, held));
        }
        Ok((Some(read_job(response).await?), held))
    }

    /// Waits until the job is finished (`completed`, `failed`, `cancelled` or `expired`)
    /// and returns it, following its changes with [`Client::wait_for_change`] rather than
    /// polling. It waits as long as it takes: wrap it in `tokio::time::timeout` for a
    /// limit.
    pub async fn wait_until_finished(&self, id: &JobId) -> Result<Job> {
        self.follow(id, |_| {}).await
    }

    /// Like [`Client::wait_until_finished`], calling `on_change` with the job as first read
    /// and after every change (to show progress).
    pub async fn follow(&self, id: &JobId, mut on_change: impl FnMut(&Job)) -> Result<Job> {
        let mut job = self.get(id).await?;
        on_change(&job);
        loop {
            if job.is_finished() {
                return Ok(job);
            }
            let etag =
                job.etag.clone().ok_or_else(|| Error::Decode("a job without an ETag".into()))?;
            match self.held_get(id, &etag, WAIT_STEP).await? {
                (Some(next), _) => {
                    job = next;
                    on_change(&job);
                }
                (None, true) => {}
                (None, false) => tokio::time::sleep(POLL_WHEN_NOT_HELD).await,
            }
        }
    }
}
