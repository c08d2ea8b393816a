//! Per-user rate limiting (`JOBS_RATE_LIMIT`): one token bucket per user (organization and
//! subject of the token) in this process, holding a burst of N requests and refilling at N
//! per second or per minute. Over it, a request is 429 `rate_limited` with `Retry-After`.
//!
//! The check runs when the [`crate::Caller`] is extracted, that is after authentication and
//! before the body is read or the database is touched. Health, metrics and the docs never
//! extract a caller, so they are never limited.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, ResponseBuilder, Type};

/// How often users whose bucket is full again are forgotten, so that memory follows the
/// users active in the last minutes rather than every user ever seen.
pub const FORGET_IDLE_EVERY: Duration = Duration::from_secs(60);

/// The window a rate is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// `N/s`
    Second,
    /// `N/min`
    Minute,
}

/// A rate such as `100/s` or `600/min`: the burst and the refill per window are both N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// N.
    pub requests: NonZeroU32,
    /// The window.
    pub per: Per,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let err = || {
            format!(
                "'{text}' is not a rate: expected N/s or N/min with N a whole number from 1 \
                 to {} (for example 10/s or 600/min)",
                u32::MAX
            )
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(err)?;
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let requests = count.parse::<NonZeroU32>().map_err(|_| err())?;
        let per = match unit {
            "s" => Per::Second,
            "min" => Per::Minute,
            _ => return Err(err()),
        };
        Ok(Rate { requests, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per {
            Per::Second => "s",
            Per::Minute => "min",
        };
        write!(f, "{}/{unit}", self.requests)
    }
}

impl Rate {
    fn quota(self) -> Quota {
        match self.per {
            Per::Second => Quota::per_second(self.requests),
            Per::Minute => Quota::per_minute(self.requests),
        }
        .allow_burst(self.requests)
    }
}

/// (organization, subject)
type UserKey = (String, String);

/// The per-user limiter shared by every worker of the process.
pub struct UserRateLimiter<C: Clock = DefaultClock> {
    rate: Rate,
    limiter: RateLimiter<UserKey, DefaultKeyedStateStore<UserKey>, C, NoOpMiddleware<C::Instant>>,
    start: C::Instant,
    /// When idle users were last forgotten, in nanoseconds since `start`.
    last_forget: AtomicU64,
}

impl<C: Clock> fmt::Debug for UserRateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRateLimiter").field("rate", &self.rate.to_string()).finish()
    }
}

impl UserRateLimiter<DefaultClock> {
    /// A limiter on the monotonic clock.
    pub fn new(rate: Rate) -> Self {
        UserRateLimiter::with_clock(rate, DefaultClock::default())
    }
}

impl<C: Clock> UserRateLimiter<C> {
    /// A limiter that reads time from `clock`.
    pub fn with_clock(rate: Rate, clock: C) -> Self {
        let start = clock.now();
        UserRateLimiter {
            rate,
            limiter: RateLimiter::new(rate.quota(), DefaultKeyedStateStore::default(), clock),
            start,
            last_forget: AtomicU64::new(0),
        }
    }

    /// Takes one request from the user's bucket; when it is empty, returns how many whole
    /// seconds (at least 1) to wait before the next request can pass.
    pub fn check(&self, org: &str, sub: &str) -> Result<(), u64> {
        self.forget_idle_users();
        let key = (org.to_owned(), sub.to_owned());
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            whole_seconds(wait)
        })
    }

    /// How many users the limiter currently remembers.
    pub fn remembered_users(&self) -> usize {
        self.limiter.len()
    }

    /// At most once per [`FORGET_IDLE_EVERY`], drops the users whose bucket is full again
    /// (they are indistinguishable from users never seen).
    fn forget_idle_users(&self) {
        let elapsed: Duration = self.limiter.clock().now().duration_since(self.start).into();
        let now = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_forget.load(Ordering::Relaxed);
        let every = u64::try_from(FORGET_IDLE_EVERY.as_nanos()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < every {
            return;
        }
        // One caller does the sweep; the others go on.
        if self.last_forget.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// Rounds a wait up to whole seconds, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// Documents the 429 answer, with `Retry-After`, on every operation that needs a token.
pub(crate) struct RateLimitedResponses;

impl utoipa::Modify for RateLimitedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let retry_after = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
            .description(Some("Whole seconds to wait before the next request can pass"))
            .build();
        let response = ResponseBuilder::new()
            .description("Too many requests from this user (JOBS_RATE_LIMIT)")
            .header("Retry-After", retry_after)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(
                        <crate::ErrorBody as utoipa::ToSchema>::name(),
                    )))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    operation.responses.responses.insert("429".to_owned(), response.clone().into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use governor::clock::FakeRelativeClock;

    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap()
    }

    #[test]
    fn rates_are_n_per_second_or_per_minute() {
        assert_eq!(rate("10/s"), Rate { requests: NonZeroU32::new(10).unwrap(), per: Per::Second });
        assert_eq!(rate("600/min").per, Per::Minute);
        assert_eq!(rate("600/min").to_string(), "600/min");
        assert_eq!(rate("4294967295/s").requests.get(), u32::MAX);
        for bad in [
            "",
            "abc",
            "0/s",
            "5/h",
            "5",
            "/s",
            "5/",
            "-1/s",
            "+5/s",
            "1.5/s",
            "5/S",
            "5/sec",
            "5/m",
            "4294967296/s",
            "5 /s",
            "5/s/s",
        ] {
            let err = bad.parse::<Rate>().unwrap_err();
            assert!(err.contains("N/s or N/min"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_user_gets_a_burst_of_n_then_waits_for_the_refill() {
        let clock = FakeRelativeClock::default();
        let limiter = UserRateLimiter::with_clock(rate("3/min"), clock.clone());
        for _ in 0..3 {
            assert_eq!(limiter.check("o", "ann"), Ok(()));
        }
        // One request comes back every 20 seconds.
        assert_eq!(limiter.check("o", "ann"), Err(20));
        clock.advance(Duration::from_millis(19_500));
        assert_eq!(limiter.check("o", "ann"), Err(1));
        clock.advance(Duration::from_millis(500));
        assert_eq!(limiter.check("o", "ann"), Ok(()));
        assert_eq!(limiter.check("o", "ann"), Err(20));
    }

    #[test]
    fn users_are_told_apart_by_organization_and_subject() {
        let limiter = UserRateLimiter::with_clock(rate("1/s"), FakeRelativeClock::default());
        assert_eq!(limiter.check("o", "ann"), Ok(()));
        assert_eq!(limiter.check("o", "ann"), Err(1));
        assert_eq!(limiter.check("o", "bob"), Ok(()));
        assert_eq!(limiter.check("p", "ann"), Ok(()));
        // No concatenation collisions: ("o", "ann") is not ("oa", "nn").
        assert_eq!(limiter.check("oa", "nn"), Ok(()));
    }

    #[test]
    fn idle_users_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let limiter = UserRateLimiter::with_clock(rate("2/s"), clock.clone());
        for user in 0..100 {
            assert_eq!(limiter.check("o", &user.to_string()), Ok(()));
        }
        assert_eq!(limiter.remembered_users(), 100);
        clock.advance(FORGET_IDLE_EVERY);
        assert_eq!(limiter.check("o", "fresh"), Ok(()));
        assert_eq!(limiter.remembered_users(), 1);
    }

    #[test]
    fn waits_round_up_to_whole_seconds_of_at_least_one() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_nanos(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(20)), 20);
        assert_eq!(whole_seconds(Duration::from_millis(20_001)), 21);
    }
}
