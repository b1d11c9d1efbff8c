#!/usr/bin/env bash
# The reference's API Gateway stage against the built-in route, on one spillway: the
# stage is built the reference's way with the AWS CLI (POST on the root, an AWS
# integration to kinesis:PutRecord rendering `$util.base64Encode($input.body)` and
# `$context.requestId` through the VTL interpreter, integration responses 200 and
# `4\d{2}`), then `spillway load` fires the reference's load at `POST /dev` and at the
# stage URL in turn, rounds interleaved, and verifies every acknowledged record reached
# the table once. Prints one row per round and target.
#
# Usage: bench/stage_vs_route.sh [requests per round, default 20000] [rounds, default 3]
# Needs: the AWS CLI (pip install awscli).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
ROUNDS=${2:-3}
cargo build --release --quiet --bin spillway
BIN=$PWD/target/release/spillway
DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
"$BIN" serve --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" > "$DIR/out" 2> "$DIR/log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do grep -q listening "$DIR/out" 2>/dev/null && break; sleep 0.1; done

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
gw() { aws --endpoint-url "$BASE" apigateway "$@"; }
API=$(gw create-rest-api --name kinesis-sample-api --query id --output text)
ROOT=$(gw get-resources --rest-api-id "$API" --query 'items[0].id' --output text)
gw put-method --rest-api-id "$API" --resource-id "$ROOT" --http-method POST --authorization-type NONE >/dev/null
cat > "$DIR/template.json" <<'JSON'
{"application/json": "{\"StreamName\": \"example-stream\", \"PartitionKey\": \"$context.requestId\", \"Data\": \"$util.base64Encode($input.body)\"}"}
JSON
gw put-integration --rest-api-id "$API" --resource-id "$ROOT" --http-method POST --type AWS \
  --integration-http-method POST --uri arn:aws:apigateway:us-east-1:kinesis:action/PutRecord \
  --request-templates "file://$DIR/template.json" >/dev/null
for code in 200 400; do
  gw put-method-response --rest-api-id "$API" --resource-id "$ROOT" --http-method POST --status-code $code >/dev/null
done
gw put-integration-response --rest-api-id "$API" --resource-id "$ROOT" --http-method POST --status-code 200 >/dev/null
gw put-integration-response --rest-api-id "$API" --resource-id "$ROOT" --http-method POST --status-code 400 --selection-pattern '4\d{2}' >/dev/null
gw create-deployment --rest-api-id "$API" --stage-name dev >/dev/null
STAGE=$BASE/_aws/execute-api/$API/dev/

echo "round target req/s p50_ms p99_ms errors verified"
for r in $(seq "$ROUNDS"); do
  for target in route stage; do
    url=$BASE/dev; [ "$target" = stage ] && url=$STAGE
    "$BIN" load --url "$url" -n "$N" -c 50 --verify --json > "$DIR/report.json"
    python3 - "$r" "$target" "$DIR/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))
lat, v = r["latency_ms"], r.get("verify", {})
errors = sum(r["errors"].values()) + sum(n for code, n in r["status"].items() if code != "200")
verified = f'{v.get("landed")}/{v.get("acknowledged")} dup {v.get("duplicates")}'
print(sys.argv[1], sys.argv[2], round(r["throughput_rps"]), lat["p50"], lat["p99"], errors, verified)
PY
  done
done
