//! What the store knows of the database's health, and what it does with it.
//!
//! - **Fail fast while down.** A failed connection attempt, or a pooled connection that
//!   fails its checkout test, marks the database down (r2d2 reports both to [`Watch`]).
//!   While it is down, a checkout waits [`DOWN_CHECKOUT`] at most instead of the full
//!   checkout timeout, so callers get `Unavailable` (503) at once instead of queueing.
//! - **Recover by itself.** The pool keeps reconnecting in the background (every 2.5 s at
//!   most); the first connection made, the first checkout that passes its test, or a
//!   readiness probe that commits marks the database up again.
//! - **Readiness is a write.** [`JobStore::check_ready`] commits a one-row update within a
//!   second, so a database that answers reads but cannot commit (a full disk) is not ready.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use r2d2::event::AcquireEvent;

use crate::db::{write_transaction, ConnectError, DbConnection, Pooled, SQLITE_BUSY_TIMEOUT};
use crate::schema::readiness;
use crate::store::{JobStore, PoolStatus};
use crate::{StoreError, StoreResult};

/// While the database is known down, a checkout waits this long at most: enough for a
/// reconnect already under way to land, short enough that callers hear 503 at once.
pub const DOWN_CHECKOUT: Duration = Duration::from_millis(200);
/// A checkout waits in slices of this length, so that it notices the database going down
/// while it waits.
const SLICE: Duration = Duration::from_millis(50);
/// How long the readiness probe waits for a connection.
pub const READY_CHECKOUT: Duration = Duration::from_millis(300);
/// How long the readiness probe's write may wait for a lock, in milliseconds.
const READY_LOCK_WAIT_MS: u32 = 400;

#[derive(Debug, Default)]
struct State {
    down_since: Option<Instant>,
    cause: String,
}

/// The database's health as this process last saw it, shared by every clone of the store
/// and by the pool's hooks.
#[derive(Debug)]
pub(crate) struct Health {
    state: Mutex<State>,
    /// The normal checkout timeout.
    checkout_timeout: Duration,
    /// Whether the pool tests a connection at checkout, so that a checkout proves the
    /// database answers.
    tested_checkouts: bool,
}

impl Health {
    pub(crate) fn new(checkout_timeout: Duration, tested_checkouts: bool) -> Health {
        Health { state: Mutex::default(), checkout_timeout, tested_checkouts }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Since when the database is known down, if it is.
    pub(crate) fn down_since(&self) -> Option<Instant> {
        self.state().down_since
    }

    pub(crate) fn mark_down(&self, cause: &str) {
        let mut state = self.state();
        if state.down_since.is_none() {
            state.down_since = Some(Instant::now());
            log::warn!("database unreachable ({cause}): answering 503 at once until it is back");
        }
        cause.clone_into(&mut state.cause);
    }

    pub(crate) fn mark_up(&self) {
        let mut state = self.state();
        if let Some(since) = state.down_since.take() {
            log::info!("database reachable again after {:.1?}", since.elapsed());
        }
    }

    /// How long a request may wait for a connection (the pool's checkout timeout).
    pub(crate) fn checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

    /// How long to wait for a connection: `full`, or at most [`DOWN_CHECKOUT`] while the
    /// database is known down.
    pub(crate) fn budget(&self, full: Duration) -> Duration {
        match self.down_since() {
            Some(_) => full.min(DOWN_CHECKOUT),
            None => full,
        }
    }

    fn unavailable(&self, budget: Duration) -> StoreError {
        let state = self.state();
        match state.down_since {
            Some(since) => StoreError::Unavailable(
                format!("{} (down for {:.1?})", state.cause, since.elapsed()).into(),
            ),
            None => StoreError::Unavailable(format!("no connection free within {budget:?}").into()),
        }
    }
}

/// The pool's hooks into [`Health`]: a failed connection attempt or checkout test marks the
/// database down, a new connection marks it up.
#[derive(Debug, Clone)]
pub(crate) struct Watch(pub(crate) Arc<Health>);

impl r2d2::HandleError<ConnectError> for Watch {
    fn handle_error(&self, error: ConnectError) {
        log::debug!("database connection failed: {error}");
        self.0.mark_down(&error.to_string());
    }
}

impl r2d2::HandleEvent for Watch {
    fn handle_acquire(&self, _event: AcquireEvent) {
        self.0.mark_up();
    }
}

impl JobStore {
    /// A pooled connection within the checkout timeout, or at once while the database is
    /// known down.
    pub(crate) fn conn(&self) -> StoreResult<Pooled> {
        self.checkout(self.health.checkout_timeout)
    }

    /// A pooled connection if one is free this moment, without waiting.
    pub(crate) fn try_conn(&self) -> Option<Pooled> {
        self.pool.try_get()
    }

    /// Waits for a connection up to `budget`, in slices, cutting the wait short as soon as
    /// the database is known down.
    pub(crate) fn checkout(&self, budget: Duration) -> StoreResult<Pooled> {
        let start = Instant::now();
        loop {
            let budget = self.health.budget(budget);
            let left = budget.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(self.health.unavailable(budget));
            }
            if let Ok(conn) = self.pool.get_timeout(left.min(SLICE)) {
                if self.health.tested_checkouts {
                    self.health.mark_up();
                }
                return Ok(conn);
            }
        }
    }

    /// Readiness: commits a one-row write, within about a second. `Unavailable` when no
    /// connection comes within [`READY_CHECKOUT`] (at once while the database is known
    /// down), or when the write cannot take its lock or commit (a full disk, a read-only
    /// database). Success marks the database up.
    pub fn check_ready(&self) -> StoreResult<()> {
        let mut conn = self.checkout(READY_CHECKOUT)?;
        probe_write(&mut conn)?;
        self.health.mark_up();
        Ok(())
    }

    /// Pool figures.
    pub fn pool_status(&self) -> PoolStatus {
        let state = self.pool.state();
        PoolStatus {
            connections: state.connections,
            idle: state.idle_connections,
            max_size: self.pool.max_size(),
        }
    }
}

/// The readiness write, with its lock wait bounded: on SQLite the busy timeout is shortened
/// for the probe and restored after it; on PostgreSQL the transaction sets its own timeouts.
fn probe_write(conn: &mut DbConnection) -> StoreResult<()> {
    if let DbConnection::Sqlite(inner) = conn {
        inner.batch_execute(&format!("PRAGMA busy_timeout = {READY_LOCK_WAIT_MS};"))?;
        let written = write_transaction(conn, touch);
        let restored = conn.batch_execute(SQLITE_BUSY_TIMEOUT);
        if let Err(err) = &restored {
            log::error!("restoring the busy timeout after the readiness probe: {err}");
        }
        written?;
        return Ok(restored?);
    }
    conn.transaction(|conn| {
        conn.batch_execute(&format!(
            "SET LOCAL statement_timeout = {READY_LOCK_WAIT_MS}; \
             SET LOCAL lock_timeout = {READY_LOCK_WAIT_MS};"
        ))?;
        touch(conn)
    })
}

/// Rewrites the readiness row (and puts it back if someone deleted it).
fn touch(conn: &mut DbConnection) -> StoreResult<()> {
    let at = jobs_domain::now().naive_utc();
    let updated =
        diesel::update(readiness::table.find(1)).set(readiness::checked_at.eq(at)).execute(conn)?;
    if updated == 0 {
        diesel::insert_into(readiness::table)
            .values((readiness::id.eq(1), readiness::checked_at.eq(at)))
            .execute(conn)?;
    }
    Ok(())
}
