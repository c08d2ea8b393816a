//! Black-box tests of the Jobs API over HTTP, each against a fresh server and database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod bad_input;
mod callback_targets;
mod checkpoints;
mod client;
mod client_events;
mod client_retries;
mod concurrency;
mod conditional;
mod docs;
mod event_order;
mod events;
mod faults;
mod idempotency;
mod lifecycle;
mod limits;
mod listing;
mod observability;
mod openapi;
mod openapi_clients;
mod pg_reads;
mod ratelimit;
mod routing;
mod stream;
mod sweep_batches;
mod sweeps;
mod user_header;
mod webhooks;
mod workers;
