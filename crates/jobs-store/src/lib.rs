//! Durable storage for the Jobs API: diesel repositories over an r2d2 pool, with embedded
//! migrations applied at start.
//!
//! Every status change is a compare-and-set on the row's `version`, so two racing requests
//! never both win; lists are keyset-paginated on (`created_at`, `id`) with matching indexes.
//! Every method blocks: call them from a blocking thread (`spawn_blocking`, `web::block`),
//! except the two that return futures: `create_new` (it waits for the group-commit writer)
//! and `get_async` (a read of one job on this thread's own PostgreSQL connection).

mod async_reader;
pub mod changes;
mod checkpoint;
mod claims;
mod db;
mod error;
mod event_log;
pub mod events;
mod expiry;
mod fingerprint;
mod health;
mod maintenance;
mod outbox;
mod reader;
mod rows;
mod schema;
mod spelled;
mod sqlite_rows;
mod stamp;
mod store;
mod writer;

pub use changes::{ChangeNotice, CHANNEL};
pub use checkpoint::Checkpoint;
pub use claims::ClaimFilter;
pub use db::{DatabaseUrl, PoolOptions, UrlError, SQLITE_MIGRATIONS};
pub use error::{Cause, StoreError, StoreResult};
pub use event_log::{
    deleted_events_cutoff, EventFilter, EventSubject, EventWithJob, DELETED_EVENTS_KEPT,
};
pub use events::EventContext;
pub use health::{DOWN_CHECKOUT, READY_CHECKOUT};
pub use outbox::{Attempt, Delivery, NextStep};
pub use store::{Created, JobStore, Page, PoolStatus, StoreObserver, IDEMPOTENCY_WINDOW};

/// Fresh test databases (SQLite, or PostgreSQL with `JOBS_TEST_DATABASE_URL`).
#[cfg(test)]
#[allow(dead_code)] // shared with the jobs-tests harness, which uses all of it
#[path = "../../../tests/src/db.rs"]
mod test_db;
