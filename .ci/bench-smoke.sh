#!/usr/bin/env bash
# Runs every benchmark once with tiny knobs, in the test profile (sharing the tests' build):
# they must build and run to the end, so they cannot rot. No figure is checked; the real
# runs are `cargo bench` (docs/BENCHMARKS.md). Uses JOBS_TEST_DATABASE_URL like the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export BENCH_CREATES=50 BENCH_GETS=100 BENCH_LISTS=20 BENCH_CONCURRENCY=4
export BENCH_TOTAL_JOBS=2000 BENCH_OVERDUE_EVERY=10
export BENCH_DELIVERIES=50
export BENCH_WAITERS=50 BENCH_WAITED_JOBS=5 BENCH_CLAIMS=50 BENCH_CLAIMERS=4
export BENCH_STREAMS=100 BENCH_RATE=50 BENCH_SECONDS=1 BENCH_WRITERS=2
export BENCH_JOBS=50 BENCH_ROUNDS=1

# The workers benchmark starts the server binary as its own process.
cargo build --locked -p jobs-server
export JOBS_SERVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/jobs-server"
cargo test --locked -p jobs-tests --benches
