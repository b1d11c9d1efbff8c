#!/usr/bin/env bash
# Workers over one shared engine: 1, 2 and 3 spillway workers in front of one spillway
# that only stores (streams, tables, leases), a stream of 4 shards, the built-in
# function. For each worker count:
#   ingest: wrk POSTs 100-byte bodies at /dev, the connections split over the workers
#           (200 in all), for SECONDS; each 200 is the engine's PutRecord answer;
#   through: records per second from the start of the ingest until the last record is
#           an item in the table (the workers drain while the ingest runs, and after).
# Everything runs on this machine: the engine, the workers and wrk share its cores, so
# the figures show where one machine's CPU goes, not how a fleet would scale.
#   bench/workers.sh [SPILLWAY_BINARY (default target/release/spillway)] [SECONDS (10)]
# Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/spillway}; DUR=${2:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'stop_all; rm -rf "$WORK"' EXIT

start() { # dir config-file extra-args... -> echoes the base URL
  local dir=$1 cfg=$2; shift 2
  "$BIN" serve --config "$cfg" --data-dir "$dir/data" --listen 127.0.0.1:0 "$@" > "$dir/out" 2> "$dir/log" &
  PIDS+=($!)
  for _ in $(seq 200); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.05; done
  sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/out"
}

item_count() { curl -s "$1/_spillway/tables/example-table?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["item_count"])'; }
stream_count() { curl -s "$1/_spillway/streams/example-stream" | python3 -c 'import json,sys; print(sum(s["records"] for s in json.load(sys.stdin)["shards"]))'; }

# load URLS... -> sets INGEST and RECORDS, THROUGH: 200 connections split over URLS,
# then wait for the engine's table to hold every record of its stream.
load() {
  local engine=$1; shift
  local per=$(( 200 / $# )) started loads=() i=0 drained
  started=$(date +%s.%N)
  for u in "$@"; do
    wrk -t1 -c"$per" -d"${DUR}s" -s bench/post.lua "$u/dev" > "$run/wrk-$i.txt" &
    loads+=($!); i=$((i + 1))
  done
  wait "${loads[@]}"
  INGEST=$(cat "$run"/wrk-*.txt | awk '/Requests\/sec/ {s += $2} END {printf "%d", s}')
  RECORDS=$(stream_count "$engine")
  for _ in $(seq 3000); do [ "$(item_count "$engine")" -ge "$RECORDS" ] && break; sleep 0.1; done
  drained=$(date +%s.%N)
  THROUGH=$(awk -v r="$RECORDS" -v a="$started" -v b="$drained" 'BEGIN {printf "%d", r / (b - a)}')
}

echo "| processes | ingest (requests/s) | through to the table (records/s) | records |"
echo "|---|---|---|---|"
# For scale: one embedded spillway, the same stream of 4 shards on its own disk.
run="$WORK/embedded"; mkdir -p "$run/one"
"$BIN" config | sed -e 's|^shard_count = 1|shard_count = 4|' \
  -e 's|^StartingPosition = "LATEST"|StartingPosition = "TRIM_HORIZON"|' > "$run/one.toml"
one=$(start "$run/one" "$run/one.toml")
load "$one" "$one"
echo "| embedded, 1 process | $INGEST | $THROUGH | $RECORDS |"
stop_all
for n in 1 2 3; do
  run="$WORK/run-$n"; mkdir -p "$run/engine"
  printf 'streams = []\nroutes = []\ntables = []\nfunctions = []\nmappings = []\n' > "$run/engine.toml"
  engine=$(start "$run/engine" "$run/engine.toml")
  host=${engine#http://}
  urls=()
  for i in $(seq "$n"); do
    mkdir -p "$run/w$i"
    "$BIN" config | sed \
      -e "s|^stream_engine = \"fjall://\"|stream_engine = \"kinesis+http://$host\"|" \
      -e "s|^table_engine = \"fjall://\"|table_engine = \"dynamodb+http://$host\"|" \
      -e "s|^worker_id = \"\"|worker_id = \"w$i\"|" \
      -e 's|^shard_count = 1|shard_count = 4|' \
      -e 's|^StartingPosition = "LATEST"|StartingPosition = "TRIM_HORIZON"|' > "$run/w$i.toml"
    urls+=("$(start "$run/w$i" "$run/w$i.toml")")
  done
  # Every lease taken before the load starts.
  for _ in $(seq 200); do
    held=0
    for u in "${urls[@]}"; do
      held=$(( held + $(curl -s "$u/_spillway/worker" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["held"]))') ))
    done
    [ "$held" -ge 4 ] && break; sleep 0.1
  done
  load "$engine" "${urls[@]}"
  echo "| $n worker(s) + 1 engine | $INGEST | $THROUGH | $RECORDS |"
  stop_all
done
