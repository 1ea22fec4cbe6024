#!/usr/bin/env bash
# Interleaved A/B of the request path: two giftrank binaries take turns serving the
# shipped models while wrk sends one request file at concurrency 1 and 8. Prints, per
# binary, the medians over the rounds of requests per second and p50 at each
# concurrency, and B/A ratios. Both binaries see the same machine state on average.
#
#   tools/request_ab.sh BINARY_A BINARY_B [ROUNDS] [SECONDS] [REQUEST_FILE]
#   (defaults: 5 rounds, 5 s per run, examples/rank_request.json)
set -euo pipefail
cd "$(dirname "$0")/.."

a=$1
b=$2
rounds=${3:-5}
seconds=${4:-5}
request=${5:-examples/rank_request.json}
port=${LOADTEST_PORT:-18530}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

source tools/serve.sh

# wrk's p50 in microseconds and its requests per second.
measure() {  # connections
  RANK_REQUEST="$request" wrk -t "$(( $1 < 2 ? 1 : 2 ))" -c "$1" -d "${seconds}s" --latency \
    -s tools/wrk_rank.lua "http://127.0.0.1:$port/rank" | awk '
      / 50%/ { v = $2; u = 1; if (v ~ /ms$/) u = 1000; else if (v ~ /us$/) u = 1; else if (v ~ /s$/) u = 1e6
               sub(/[a-z]+$/, "", v); p50 = v * u }
      /Requests\/sec/ { rps = $2 }
      /non-200 responses: [1-9]/ { print "non-200 answers" > "/dev/stderr"; exit 1 }
      END { printf "%.0f %.1f\n", p50, rps }'
}

for round in $(seq "$rounds"); do
  for side in a b; do
    binary=$a; [[ $side == b ]] && binary=$b
    start_server "$binary" "$port"
    RANK_REQUEST="$request" wrk -t1 -c1 -d1s -s tools/wrk_rank.lua "http://127.0.0.1:$port/rank" >/dev/null
    for c in 1 8; do measure $c >>"$out/$side.c$c"; done
    stop_server
  done
  echo "round $round done" >&2
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "request: $request; $rounds rounds of ${seconds}s; A = $a, B = $b"
printf '| | A | B | B/A |\n|---|---:|---:|---:|\n'
for c in 1 8; do
  for col in 1 2; do
    name="p50 (µs)"; [[ $col == 2 ]] && name="req/s"
    ma=$(cut -d' ' -f$col "$out/a.c$c" | median)
    mb=$(cut -d' ' -f$col "$out/b.c$c" | median)
    printf '| concurrency %s %s | %s | %s | %.3f |\n' "$c" "$name" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN { print b / a }')"
  done
done
