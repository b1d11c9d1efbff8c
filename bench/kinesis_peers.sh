#!/usr/bin/env bash
# Kinesis PutRecord throughput against the peers, same machine, same run: spillway
# (fsync and os durability, stream only) and kinesalite (in memory, from npm), at 64
# connections, 1 shard, 100-byte records, wrk with bench/putrecord.lua.
#
# Usage: bench/kinesis_peers.sh [seconds, default 10]
# Needs: wrk, node + npm, the AWS CLI (to create the peers' stream).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
PEERS=${PEERS_DIR:-$PWD/target/peers}
mkdir -p "$PEERS"
[ -x "$PEERS/node_modules/.bin/kinesalite" ] || (cd "$PEERS" && npm install --silent kinesalite@3 >/dev/null)
cargo build --release --quiet --bin spillway
BIN=$PWD/target/release/spillway
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return; sleep 0.1; done; }
run() { # url -> req/s p50 p99 non2xx
  local out
  out=$(STREAM=bench wrk -t2 -c64 -d"${DUR}s" --latency -s bench/putrecord.lua "$1")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {print $5}' <<<"$out")"
}
echo "| server | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|"
for durability in fsync os; do
  dir=$(mktemp -d "$PEERS/spillway-XXXX")
  { echo "mappings = []"; $BIN config | sed '/^# Event source mappings/,$d'; } | sed "s/durability = \"fsync\"/durability = \"$durability\"/" > "$dir.toml"
  RUST_LOG=warn $BIN serve --config "$dir.toml" --data-dir "$dir" --listen 127.0.0.1:4596 >/dev/null & SP=$!
  wait_port http://127.0.0.1:4596/_spillway/health
  aws --endpoint-url http://127.0.0.1:4596 kinesis create-stream --stream-name bench --shard-count 1
  read -r rps p50 p99 bad < <(run http://127.0.0.1:4596/)
  echo "| spillway, durability=$durability | $rps | $p50 | $p99 | ${bad:-0} |"
  kill -TERM $SP; wait $SP || true
  rm -rf "$dir" "$dir.toml"
done
for mode in memory disk; do
  extra=()
  if [ "$mode" = disk ]; then
    kdir=$(mktemp -d "$PEERS/kinesalite-XXXX")
    extra=(--path "$kdir")
  fi
  "$PEERS/node_modules/.bin/kinesalite" --port 4595 --createStreamMs 0 "${extra[@]}" >/dev/null 2>&1 & KL=$!
  wait_port http://127.0.0.1:4595/
  aws --endpoint-url http://127.0.0.1:4595 kinesis create-stream --stream-name bench --shard-count 1
  read -r rps p50 p99 bad < <(run http://127.0.0.1:4595/)
  echo "| kinesalite 3 ($mode: ${extra[*]:-in memory}) | $rps | $p50 | $p99 | ${bad:-0} |"
  kill $KL; wait $KL 2>/dev/null || true
done
