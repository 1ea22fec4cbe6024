#!/usr/bin/env bash
# Load test of POST /rank on the shipped default models with wrk (Debian package `wrk`):
# requests per second, p50 and p99 at concurrency 1 and 8 for one request file.
#
#   tools/loadtest.sh [REQUEST_FILE] [SECONDS]      (defaults: examples/rank_request.json, 15)
set -euo pipefail
cd "$(dirname "$0")/.."

request=${1:-examples/rank_request.json}
seconds=${2:-15}
port=${LOADTEST_PORT:-18480}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet
source tools/serve.sh
start_server target/release/giftrank "$port"
trap stop_server EXIT

echo "request: $request ($(wc -c <"$request") bytes), ${seconds}s per run"
for connections in 1 8; do
  echo "== concurrency $connections"
  RANK_REQUEST="$request" wrk -t "$connections" -c "$connections" -d "${seconds}s" --latency \
    -s tools/wrk_rank.lua "http://127.0.0.1:$port/rank" |
    grep -E "Requests/sec|^ +50%|^ +99%|non-200|Socket errors"
done
