#!/usr/bin/env bash
# PutItem throughput as one table grows to N items (default 10,000,000): spillway
# with fsync durability, 64 connections, ~100-byte items, driven by `spillway load`
# with the DynamoDB API's headers; prints throughput per 10% of the run and draws
# bench/charts/dynamodb_growth.svg.
#
# Usage: bench/dynamodb_growth.sh [records, default 10000000] [data dir parent]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
PARENT=${2:-$PWD/target/bench}
mkdir -p "$PARENT"
cargo build --release --quiet --bin spillway
BIN=target/release/spillway
dir=$(mktemp -d "$PARENT/growth-XXXX")
RUST_LOG=warn $BIN serve --data-dir "$dir" --listen 127.0.0.1:4587 >/dev/null & SP=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:4587/_spillway/health && break; sleep 0.1; done
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --region us-east-1 --endpoint-url http://127.0.0.1:4587 dynamodb create-table \
  --table-name growth --attribute-definitions AttributeName=ID,AttributeType=S \
  --key-schema AttributeName=ID,KeyType=HASH --billing-mode PAY_PER_REQUEST >/dev/null
MSG=$(head -c 64 /dev/zero | tr '\0' x)
$BIN load --url http://127.0.0.1:4587/ -n "$N" -c 64 --json \
  -H "Content-Type: application/x-amz-json-1.0" \
  -H "X-Amz-Target: DynamoDB_20120810.PutItem" \
  -H "Authorization: AWS4-HMAC-SHA256 Credential=bench/20261125/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
  --payload "{\"TableName\":\"growth\",\"Item\":{\"ID\":{\"S\":\"item-{i}\"},\"Message\":{\"S\":\"$MSG\"}}}" > "$dir.json"
echo "data dir size: $(du -sh "$dir" | cut -f1), peak RSS $(( $(awk '/VmHWM/ {print $2}' /proc/$SP/status) / 1024 )) MB"
kill -TERM $SP; wait $SP || true
python3 - "$dir.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['requests']} PutItem in {r['elapsed_seconds']:.1f} s: {r['throughput_rps']:.0f}/s overall, statuses {r['status']}, p50 {r['latency_ms']['p50']:.2f} ms, p99 {r['latency_ms']['p99']:.2f} ms")
t = r["timeline"]
n = len(t)
done = 0
print("items stored   req/s over the next tenth of the run")
for k in range(10):
    part = t[k * n // 10:(k + 1) * n // 10]
    count = sum(sum(b["status"].values()) for b in part)
    secs = max(len(part), 1)
    print(f"  {done:>10}   {count / secs:8.0f}")
    done += count
PY
python3 bench/growth_chart.py "$dir.json" bench/charts/dynamodb_growth.svg \
  "PutItem/s (fsync, 64 connections) as one table grows to $N items"
rm -rf "$dir" "$dir.json"
