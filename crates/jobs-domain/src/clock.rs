//! Where the server reads the time, so tests can move it forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::job::now;

/// A source of the current time, at the precision jobs record (microseconds). Cheap to
/// clone; the default is the system clock.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// A clock that reads the time from `read`.
    pub fn new(read: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(read))
    }

    /// The time this clock reads now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        system_clock()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the time it reads: two configurations compare equal by their Debug output.
        f.write_str("Clock(..)")
    }
}

/// The real time: [`now`].
pub fn system_clock() -> Clock {
    Clock::new(now)
}

/// The real time plus an offset that only grows: the server keeps running normally while a
/// test jumps ahead with [`OffsetClock::advance`].
#[derive(Clone, Debug, Default)]
pub struct OffsetClock {
    micros: Arc<AtomicI64>,
}

impl OffsetClock {
    /// A clock that reads the real time until it is advanced.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock (and every copy of it) forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        self.micros.fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// The time this clock reads now.
    pub fn now(&self) -> DateTime<Utc> {
        now() + TimeDelta::microseconds(self.micros.load(Ordering::SeqCst))
    }

    /// This clock as a [`Clock`] to hand to the store or the server.
    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Clock::new(move || this.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_moves_forward_by_what_it_is_advanced() {
        let clock = OffsetClock::new();
        let shared = clock.clock();
        let before = shared.now();
        clock.advance(TimeDelta::hours(1));
        let after = shared.now();
        assert!(after - before >= TimeDelta::hours(1), "{before} -> {after}");
        assert!(after - before < TimeDelta::hours(1) + TimeDelta::seconds(5));
    }
}
