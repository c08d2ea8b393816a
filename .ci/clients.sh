#!/usr/bin/env bash
# Checks openapi/openapi.json the way client authors use it:
#   1. lints it: Redocly (`recommended` rules) and Spectral (`spectral:oas`), no error and
#      no warning allowed;
#   2. generates a TypeScript client (openapi-typescript + openapi-fetch) and a Python
#      client (openapi-python-client) from it, into ignored directories (never committed);
#   3. type-checks the programs in clients/ (tsc --strict, mypy --strict) and runs them
#      against a live server on a free loopback port with a fresh SQLite database.
#
#   .ci/clients.sh
#
# Tool versions are pinned in clients/*/package.json (+ package-lock.json) and
# clients/python/requirements.txt. Needs node (20+), npm, python3 and curl; the server
# binary is $BIN, else the debug build in $CARGO_TARGET_DIR (or target/), brought up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# Unless $BIN names a binary, (re)build the debug one: a no-op when it is up to date.
if [ -z "${BIN:-}" ]; then
    cargo build --locked -q -p jobs-server
    BIN=${CARGO_TARGET_DIR:-target}/debug/jobs-server
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# No telemetry or update checks from the linters.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true SCARF_ANALYTICS=false
export NO_UPDATE_NOTIFIER=1 npm_config_fund=false npm_config_audit=false
export npm_config_update_notifier=false

STEP_START=$SECONDS
step() {
    echo "-- $1 (at $((SECONDS - STEP_START)) s)"
}

WORK=$(mktemp -d /tmp/jobs-clients.XXXXXX)
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step "server"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SECRET=clients-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
JOBS_DATABASE_URL="sqlite://$WORK/jobs.db" JOBS_BIND="127.0.0.1:$PORT" JOBS_JWT_SECRET="$SECRET" \
    RUST_LOG=warn "$BIN" >"$WORK/server.log" 2>&1 &
SERVER=$!
export JOBS_URL="http://127.0.0.1:$PORT"
for _ in $(seq 200); do
    curl -sf "$JOBS_URL/readyz" >/dev/null && break
    sleep 0.05
done
if ! curl -sf "$JOBS_URL/readyz" >/dev/null; then
    cat "$WORK/server.log"
    echo "clients: the server did not become ready" >&2
    exit 1
fi
# The served document is the committed one (the API tests check that too).
curl -sf "$JOBS_URL/openapi.json" | python3 -c '
import json, sys
served = json.load(sys.stdin)
committed = json.load(open("openapi/openapi.json"))
sys.exit(0 if served == committed else "the served document differs from openapi/openapi.json")'

step "lint (Redocly, Spectral)"
(cd clients/lint && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
# Redocly fails on errors only: its JSON report is read to fail on warnings too.
(cd clients/lint && npx --no-install redocly lint --extends=recommended --format=stylish \
    ../../openapi/openapi.json 2>&1 | grep -v '[║╔╚]' || true)
(cd clients/lint && npx --no-install redocly lint --extends=recommended --format=json \
    ../../openapi/openapi.json 2>/dev/null || true) | python3 -c '
import json, sys
totals = json.load(sys.stdin)["totals"]
print("redocly:", totals)
sys.exit(0 if totals["errors"] == 0 and totals["warnings"] == 0 else "redocly: problems found")'
(cd clients/lint && npx --no-install spectral lint --ruleset .spectral.yaml --fail-severity=warn \
    ../../openapi/openapi.json)

step "TypeScript client"
TS=clients/typescript
(cd $TS && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
(cd $TS && npx --no-install openapi-typescript ../../openapi/openapi.json -o generated/schema.d.ts)
(cd $TS && npx --no-install tsc --strict --noEmit -p .)
(cd $TS && rm -rf dist && npx --no-install tsc -p .)
JOBS_TOKEN=$(JOBS_JWT_SECRET="$SECRET" "$BIN" token --sub client-ts --scope "jobs:read jobs:write" --ttl 1h) \
    node $TS/dist/src/main.js

step "Python client"
PY=clients/python
VENV=${CLIENTS_VENV:-/tmp/jobs-ci-clients-venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r $PY/requirements.txt
rm -rf $PY/generated
"$VENV/bin/openapi-python-client" generate --path openapi/openapi.json \
    --output-path $PY/generated/jobs_api_client --meta none --config $PY/config.yaml
(cd $PY && MYPYPATH=generated "$VENV/bin/mypy" --strict --cache-dir "$WORK/mypy" main.py generated/jobs_api_client)
JOBS_TOKEN=$(JOBS_JWT_SECRET="$SECRET" "$BIN" token --sub client-py --scope "jobs:read jobs:write" --ttl 1h) \
    PYTHONPATH=$ROOT/$PY/generated "$VENV/bin/python" $PY/main.py

step "done"
echo "clients: lint, TypeScript and Python clients passed"
