#!/usr/bin/env bash
# Runs Schemathesis against the live server's /openapi.json for one database, with every
# default check and all phases (examples, coverage, fuzzing, stateful) on a fixed budget.
#
#   .ci/schemathesis.sh DATABASE_URL
#
# Server and Schemathesis run inside a network namespace that has only loopback, so that no
# callback URL Schemathesis makes up can send a packet anywhere; that is also why private
# webhook targets are allowed for this run (nothing can be reached but loopback).
# The change stream (GET /api/events) never ends by itself, so a fuzzer waiting for the end
# of its body would hang: it is excluded here, and tests/tests/api/stream.rs tests it.
# One worker: with several threads, CPython 3.11 can fail in its own AST module
# ("AST constructor recursion depth mismatch") while Schemathesis describes a strategy.
# Needs root (unshare), target/debug/jobs-server, and $ST (the `st` command).
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL=$1
ST=${ST:-st}
BIN=${BIN:-target/debug/jobs-server}
EXAMPLES=${ST_MAX_EXAMPLES:-60}
PORT=18707
SECRET=schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
TOKEN=$(JOBS_JWT_SECRET=$SECRET "$BIN" token --sub schemathesis --scope "jobs:read jobs:write jobs:admin" --ttl 2h)
export DATABASE_URL ST BIN EXAMPLES PORT SECRET TOKEN

unshare --net bash -euo pipefail -c '
    ip link set lo up
    JOBS_DATABASE_URL="$DATABASE_URL" JOBS_BIND="127.0.0.1:$PORT" JOBS_JWT_SECRET="$SECRET" \
        JOBS_WEBHOOK_ALLOW_PRIVATE=true RUST_LOG=warn "$BIN" &
    server=$!
    trap "kill $server 2>/dev/null; wait $server 2>/dev/null || true" EXIT
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
        sleep 0.05
    done
    "$ST" --config-file .ci/schemathesis.toml run "http://127.0.0.1:$PORT/openapi.json" \
        -H "Authorization: Bearer $TOKEN" \
        --exclude-path /api/events \
        --max-examples "$EXAMPLES" --workers 1 --seed "${ST_SEED:-20261128}" --no-color
'
