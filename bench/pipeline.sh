#!/usr/bin/env bash
# Pipeline benchmarks: the drain (one shard into the table through the built-in function),
# a 100,000-request spike end to end, and spillway's load client against wrk on a no-op
# server. All on this machine, loopback only.
#
# Usage: bench/pipeline.sh [data dir parent, default ./target/bench]
# Needs: wrk (apt-get install wrk), python3 (to read the JSON reports).
set -euo pipefail
cd "$(dirname "$0")/.."
PARENT=${1:-$PWD/target/bench}
mkdir -p "$PARENT"
cargo build --release --quiet --bin spillway --example noop_server --example drain_bench
BIN=target/release/spillway
wait_port() { for _ in $(seq 100); do curl -s "$1" >/dev/null 2>&1 && return; sleep 0.1; done; }

echo "## Drain: 1,000,000 records, one shard, built-in function"
for batch in 100 10; do
  target/release/examples/drain_bench 1000000 "$batch" "$PARENT" | sed -n 2p
done

echo
echo "## End to end: 100,000-request spike at 200 connections (fsync on)"
dir=$(mktemp -d "$PARENT/spike-XXXX")
RUST_LOG=warn $BIN serve --data-dir "$dir" --listen 127.0.0.1:4597 >/dev/null & SP=$!
wait_port http://127.0.0.1:4597/_spillway/health
$BIN load --url http://127.0.0.1:4597/dev -n 100000 -c 200 --verify --json > "$dir.json"
kill -TERM $SP; wait $SP || true
python3 - "$dir.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["verify"]
print(f"requests/s {r['throughput_rps']:.0f}, statuses {r['status']}, p50 {r['latency_ms']['p50']:.2f} ms, p99 {r['latency_ms']['p99']:.2f} ms")
print(f"landed {v['landed']} / {v['acknowledged']}, duplicates {v['duplicates']}, missing {v['missing']}")
print(f"last ack at {r['last_ack_seconds']:.3f} s, drained at {v['drained_seconds']:.3f} s: in the table {v['end_to_end_lag_seconds']:.3f} s after the last ack")
print(f"iterator age peak {v['iterator_age_peak_ms']} ms")
print("drain curve (t s, records behind, iterator age ms):")
for s in v["drain_curve"][::max(1, len(v["drain_curve"]) // 12)]:
    print(f"  {s['t']:6.2f}  {s['behind']:7d}  {s['iterator_age_ms']:5d}")
PY
rm -rf "$dir" "$dir.json"

echo
echo "## Load client against wrk, no-op server, 100-byte-class bodies"
target/release/examples/noop_server 127.0.0.1:4599 >/dev/null & NOOP=$!
wait_port http://127.0.0.1:4599/
for c in 64 200; do
  w=$(wrk -t2 -c$c -d8s -s bench/post.lua http://127.0.0.1:4599/dev | awk '/Requests\/sec/ {print $2}')
  l=$($BIN load --url http://127.0.0.1:4599/dev -n 600000 -c $c --json | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["throughput_rps"]))')
  echo "connections $c: wrk $w req/s, spillway load $l req/s"
done
kill $NOOP; wait $NOOP 2>/dev/null || true
