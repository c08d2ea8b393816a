//! Retries of requests that are safe to repeat: exponential backoff with full jitter, and
//! the server's `Retry-After`.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// When and how a request that is safe to repeat is retried.
///
/// Only requests that are safe to repeat are ever retried: `GET`s, cancel, `DELETE`,
/// heartbeats, and creates (the client gives each create an `Idempotency-Key`, the same
/// on every retry, so a retried create never makes a second job). Updates (`PATCH`) and
/// claims are never retried: repeating them could apply a change twice or take a second
/// job.
///
/// They are retried when the connection fails and on `429` and `503`. The wait before
/// retry *n* (from 0) is the server's `Retry-After` when it sent one, and otherwise a
/// random duration between zero and `min(max_delay, base_delay × 2^n)` ("full jitter").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: never retry).
    pub max_retries: u32,
    /// The backoff ceiling of the first retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured: when the server asks for a longer wait, the
    /// error is returned instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 4 retries, backoff from 250 ms up to 10 s, `Retry-After` up to 2 minutes.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        RetryPolicy { max_retries: 0, ..RetryPolicy::default() }
    }

    /// The backoff before retry `attempt` (0 for the first retry): a random duration
    /// between zero and `min(max_delay, base_delay × 2^attempt)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .checked_mul(2u32.saturating_pow(attempt.min(31)))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }

    /// The wait before retry `attempt`, or `None` when no retry should be made: the
    /// retries are used up, or the server's `Retry-After` is longer than
    /// [`max_retry_after`](RetryPolicy::max_retry_after).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_retries {
            return None;
        }
        match retry_after {
            Some(wait) if wait > self.max_retry_after => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(attempt)),
        }
    }
}

/// The `Retry-After` of an answer: delay-seconds, or an HTTP date (a date in the past
/// means now).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_has_full_jitter_under_an_exponential_ceiling() {
        let policy = RetryPolicy::default();
        for attempt in 0..10 {
            let ceiling = (policy.base_delay * 2u32.pow(attempt)).min(policy.max_delay);
            for _ in 0..50 {
                assert!(policy.backoff(attempt) <= ceiling);
            }
        }
        // Not a constant: 200 draws under a 10 s ceiling are not all equal.
        let draws: std::collections::HashSet<_> = (0..200).map(|_| policy.backoff(8)).collect();
        assert!(draws.len() > 1);
        assert!(policy.backoff(1000) <= policy.max_delay, "no overflow");
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap_and_retries_run_out() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, Some(Duration::from_secs(1))), Some(Duration::from_secs(1)));
        assert_eq!(policy.delay(0, Some(Duration::from_secs(3600))), None);
        assert_eq!(policy.delay(policy.max_retries, None), None);
        assert_eq!(RetryPolicy::never().delay(0, Some(Duration::ZERO)), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
