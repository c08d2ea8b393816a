//! The store's clock: every time the store stamps or compares goes through it.

use chrono::{DateTime, Utc};
use jobs_domain::Clock;

use crate::store::JobStore;

impl JobStore {
    /// The same store, reading the time from `clock` (tests move it forward instead of
    /// sleeping); [`JobStore::open`] uses the system clock.
    pub fn with_clock(mut self, clock: Clock) -> JobStore {
        self.clock = clock;
        self
    }

    /// The store's clock, for the server's loops to share.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The current time by the store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
