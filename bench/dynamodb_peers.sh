#!/usr/bin/env bash
# DynamoDB PutItem / GetItem / Query against the peers, same machine, same run: spillway
# (fsync and os), dynalite (npm, in memory), moto (PyPI, in memory); wrk, 64 connections,
# bench/dynamodb.lua. GetItem and Query read items the PutItem run wrote.
#
# Usage: bench/dynamodb_peers.sh [seconds, default 10]
# Needs: wrk, node + npm, moto (pip install 'moto[server]'), the AWS CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
PEERS=${PEERS_DIR:-$PWD/target/peers}
mkdir -p "$PEERS"
[ -x "$PEERS/node_modules/.bin/dynalite" ] || (cd "$PEERS" && npm install --silent dynalite@3 >/dev/null)
cargo build --release --quiet --bin spillway
BIN=$PWD/target/release/spillway
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
wait_port() { for _ in $(seq 150); do curl -s -o /dev/null "$1" && return; sleep 0.1; done; }
run() { # url action -> req/s p50 p99 non2xx
  local out
  out=$(ACTION=$2 wrk -t2 -c64 -d"${DUR}s" --latency -s bench/dynamodb.lua "$1")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out") $(awk '$1=="99%" {print $2}' <<<"$out") $(awk '/Non-2xx/ {print $5}' <<<"$out")"
}
make_table() {
  aws --endpoint-url "$1" dynamodb create-table --table-name bench \
    --attribute-definitions AttributeName=ID,AttributeType=S --key-schema AttributeName=ID,KeyType=HASH \
    --billing-mode PAY_PER_REQUEST >/dev/null
}
measure() { # label url pid
  make_table "$2"
  for action in PutItem GetItem Query; do
    read -r rps p50 p99 bad < <(run "$2/" $action)
    echo "| $1 | $action | $rps | $p50 | $p99 | ${bad:-0} |"
  done
  echo "|   peak RSS $(( $(awk '/VmHWM/ {print $2}' /proc/$3/status) / 1024 )) MB | | | | | |"
}
echo "| server | action | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"
for durability in fsync os; do
  dir=$(mktemp -d "$PEERS/spillway-XXXX")
  { echo "mappings = []"; $BIN config | sed '/^# Event source mappings/,$d'; } | sed "s/durability = \"fsync\"/durability = \"$durability\"/" > "$dir.toml"
  RUST_LOG=warn $BIN serve --config "$dir.toml" --data-dir "$dir" --listen 127.0.0.1:4591 >/dev/null & SP=$!
  wait_port http://127.0.0.1:4591/_spillway/health
  measure "spillway, durability=$durability" http://127.0.0.1:4591 $SP
  kill -TERM $SP; wait $SP || true
  rm -rf "$dir" "$dir.toml"
done
"$PEERS/node_modules/.bin/dynalite" --port 4590 --createTableMs 0 >/dev/null 2>&1 & DL=$!
wait_port http://127.0.0.1:4590/
measure "dynalite 3 (in memory)" http://127.0.0.1:4590 $DL
kill $DL; wait $DL 2>/dev/null || true
moto_server -p 4589 >/dev/null 2>&1 & MO=$!
wait_port http://127.0.0.1:4589/
measure "moto (in memory)" http://127.0.0.1:4589 $(pgrep -f "moto_server -p 4589" | head -1)
kill $MO; wait $MO 2>/dev/null || true
