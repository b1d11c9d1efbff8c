#!/usr/bin/env bash
# Memory under a spike of large POSTs: 5,000 POSTs of 100 KB at 200 connections against
# a release spillway on the default config; samples the server's RSS every 100 ms and
# prints the baseline, the peak during the load, and the RSS 30 s after it.
# Usage: bench/rss_large_posts.sh [REQUESTS] [CONCURRENCY] [BYTES]  (SPILLWAY_BIN: a binary to use instead of building one)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}; C=${2:-200}; BYTES=${3:-100000}
[ -n "${SPILLWAY_BIN:-}" ] || cargo build --release -q -p spillway --bin spillway
BIN=${SPILLWAY_BIN:-target/release/spillway}
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
$BIN serve --data-dir "$DIR/data" --listen 127.0.0.1:0 > "$DIR/out" 2> "$DIR/log" &
PID=$!
until grep -q listening "$DIR/out"; do sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$DIR/out")
rss() { awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status; }
sleep 1
BASE=$(rss)
( while kill -0 $PID 2>/dev/null; do rss; sleep 0.1; done ) > "$DIR/samples" &
SAMPLER=$!
PAD=$(head -c "$BYTES" /dev/zero | tr '\0' 'x')
$BIN load --url "$URL/dev" -n "$N" -c "$C" --payload "{\"index\": {i}, \"pad\": \"${PAD:0:$((BYTES-40))}\"}" --json > "$DIR/load.json"
PEAK=$(sort -n "$DIR/samples" | tail -1)
sleep "${AFTER_SECS:-30}"
AFTER=$(rss)
kill $SAMPLER 2>/dev/null || true
grep -E "^(Rss|Anonymous|Shared_Clean|Private_Clean)" /proc/$PID/smaps_rollup | tr -s " " | paste -sd" " >&2
python3 - "$DIR/load.json" <<PY
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r[k] for k in r if k in ("status_counts", "statuses", "errors", "throughput_rps", "latency_ms")}, indent=None)[:600])
PY
echo "rss_mb baseline=$BASE peak_during_load=$PEAK after=$AFTER (requests=$N concurrency=$C body_bytes=$BYTES)"
