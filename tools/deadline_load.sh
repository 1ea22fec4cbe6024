#!/usr/bin/env bash
# Deadlines under load (DESIGN.md section 10), with tools/rank_load.py (a closed-loop
# client that times each kind of answer on its own) against the release binary on the
# shipped models: the answers by kind (full, reduced_m, recall_only, 503, 504), their
# latencies, goodput and overall latency for
#   1. 2 clients x 5,000-candidate dense requests at the default deadline (full quality),
#   2. 64 clients x the same requests with "timeout_ms": 250,
#   3. 128 clients x the 250 ms requests, beyond what the machine can rank in 250 ms:
#      clients that send again at once (as wrk does), then clients that wait as
#      Retry-After says,
#   4. 8 clients x examples/rank_request.json (1,000 candidates) at the default deadline.
#
#   tools/deadline_load.sh [SECONDS]      (default 10 per run)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
port=${LOADTEST_PORT:-18490}

cargo build --release --quiet
mkdir -p target/load
python3 - <<'PY'
import json
d = json.load(open("examples/rank_request_dense.json"))
c = d["candidates"]
d["candidates"] = [dict(c[i % len(c)], id=f"candidate-{i}") for i in range(5000)]
d.pop("k", None)
d["k"] = 50
json.dump(d, open("target/load/dense_5000.json", "w"))
d["timeout_ms"] = 250
json.dump(d, open("target/load/dense_5000_250ms.json", "w"))
PY

source tools/serve.sh
start_server target/release/giftrank "$port"
trap stop_server EXIT

run() {  # clients, request file, options
  echo "== $1 clients, $2 ${3:-}"
  python3 tools/rank_load.py --port "$port" --clients "$1" --seconds "$seconds" --body "$2" ${3:-}
}
run 2 target/load/dense_5000.json
run 64 target/load/dense_5000_250ms.json
run 128 target/load/dense_5000_250ms.json
run 128 target/load/dense_5000_250ms.json --honor-retry-after
run 8 examples/rank_request.json
curl -s "http://127.0.0.1:$port/metrics" | grep -E "^giftrank_(degraded_requests_total|rejected_requests_total\{reason=\"(overloaded|deadline)\")"
