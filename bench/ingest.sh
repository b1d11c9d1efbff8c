#!/usr/bin/env bash
# Ingest benchmark: the HTTP ceiling (no-op axum server), spillway with fsync and with
# os durability, at 200 and 1000 keep-alive connections, 100-byte JSON bodies, wrk on
# the same machine over loopback. Also the fdatasync latency of the data dir, the raw
# engine's group-commit throughput, and spillway's peak RSS.
#
# Usage: bench/ingest.sh [seconds per run, default 10] [data dir parent, default ./target/bench]
# Needs: wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
PARENT=${2:-$PWD/target/bench}
mkdir -p "$PARENT"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet --bin spillway --example noop_server --example engine_bench
BIN=target/release/spillway

run_wrk() { # url connections -> "req/s p50 p99"
  local out
  out=$(wrk -t2 -c"$2" -d"${DUR}s" --timeout 10s -s bench/post.lua --latency "$1")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}

wait_port() { for _ in $(seq 100); do curl -s "$1" >/dev/null 2>&1 && return; sleep 0.1; done; }

echo "| setup | connections | req/s | p50 | p99 | non-2xx |"
echo "|---|---|---|---|---|---|"

target/release/examples/noop_server 127.0.0.1:4599 >/dev/null & NOOP=$!
wait_port http://127.0.0.1:4599/
for c in 200 1000; do
  read -r rps p50 p99 bad < <(run_wrk http://127.0.0.1:4599/dev $c)
  echo "| no-op axum (HTTP ceiling) | $c | $rps | $p50 | $p99 | $bad |"
done
kill $NOOP; wait $NOOP 2>/dev/null || true

# "ingest": the stream alone (the default config without its mapping), which is what the
# ingest targets are about; "pipeline": the default config, the mapping draining into the
# table on the same 2 cores while the load runs.
for setup in "fsync ingest" "os ingest" "fsync pipeline"; do
  read -r durability what <<<"$setup"
  dir=$(mktemp -d "$PARENT/ingest-XXXX")
  if [ "$what" = ingest ]; then
    { echo "mappings = []"; $BIN config | sed '/^# Event source mappings/,$d'; } > "$dir.base.toml"
  else
    $BIN config > "$dir.base.toml"
  fi
  sed "s/durability = \"fsync\"/durability = \"$durability\"/" "$dir.base.toml" > "$dir.toml"
  RUST_LOG=warn $BIN serve --config "$dir.toml" --data-dir "$dir" --listen 127.0.0.1:4598 >/dev/null & SP=$!
  wait_port http://127.0.0.1:4598/_spillway/health
  for c in 200 1000; do
    read -r rps p50 p99 bad < <(run_wrk http://127.0.0.1:4598/dev $c)
    echo "| spillway $what, durability=$durability | $c | $rps | $p50 | $p99 | $bad |"
  done
  rss=$(awk '/VmHWM/ {print $2}' /proc/$SP/status)
  records=$(curl -s http://127.0.0.1:4598/_spillway/metrics)
  echo "|   peak RSS $((rss / 1024)) MB after $records | | | | | |"
  kill -TERM $SP; wait $SP || true
  rm -rf "$dir" "$dir.toml" "$dir.base.toml"
done

echo
target/release/examples/engine_bench 200 "$DUR" fsync "$PARENT"
target/release/examples/engine_bench 200 "$DUR" os "$PARENT"
