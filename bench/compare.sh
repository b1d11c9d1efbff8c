#!/usr/bin/env bash
# Two spillway binaries, same machine, same run, interleaved: ingest (POST /dev, 200
# keep-alive connections), Kinesis PutRecord and DynamoDB PutItem (64 connections each),
# 100-byte payloads, wrk over loopback, durability fsync. Prints each round and the
# median per binary, so a change's cost (a request layer, metrics) is measured against
# the binary before it rather than against figures from another day.
#   bench/compare.sh BEFORE_BIN AFTER_BIN [SECONDS per run, default 10] [ROUNDS, default 3]
# Needs wrk (apt-get install wrk). Each run gets a fresh data dir.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?before binary}; B=${2:?after binary}; DUR=${3:-10}; ROUNDS=${4:-3}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT

# A config the binary itself understands (older ones need every key): its own default
# without the mapping (ingest alone: `mappings = []`, since newer binaries lay a file
# over the default, whose mapping would otherwise come back), plus a stream and a table
# named bench.
config_for() {
  echo "mappings = []"
  "$1" config | sed '/^\[\[mappings\]\]/,$d'
  cat <<TOML

[[streams]]
name = "bench"
shard_count = 1
retention_hours = 24
enforce_limits = false

[[tables]]
name = "bench"
hash_key = { name = "ID", type = "S" }
TOML
}

start() { # bin -> sets PID and URL
  local dir="$WORK/run-$RANDOM"; mkdir -p "$dir"
  config_for "$1" > "$dir/spillway.toml"
  "$1" serve --config "$dir/spillway.toml" --data-dir "$dir/data" --listen 127.0.0.1:0 > "$dir/out" 2> "$dir/log" &
  PID=$!
  for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
  URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$dir/out")
}

rps() { awk '/Requests\/sec/ {print int($2)}'; }

declare -A results
for round in $(seq "$ROUNDS"); do
  for which in before after; do
    bin=$A; [ "$which" = after ] && bin=$B
    start "$bin"
    sleep 0.5
    ingest=$(wrk -t2 -c200 -d"${DUR}s" -s bench/post.lua "$URL/dev" | rps)
    put_record=$(STREAM=bench wrk -t2 -c64 -d"${DUR}s" -s bench/putrecord.lua "$URL/" | rps)
    put_item=$(ACTION=PutItem wrk -t2 -c64 -d"${DUR}s" -s bench/dynamodb.lua "$URL/" | rps)
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
    echo "round $round $which: ingest $ingest/s, PutRecord $put_record/s, PutItem $put_item/s"
    results[$which-ingest]+="$ingest "
    results[$which-put_record]+="$put_record "
    results[$which-put_item]+="$put_item "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| row | before (median) | after (median) | change |"
echo "|---|---|---|---|"
for row in ingest put_record put_item; do
  a=$(echo "${results[before-$row]}" | median); b=$(echo "${results[after-$row]}" | median)
  echo "| $row | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%+.1f%%", (b-a)*100/a}') |"
done
