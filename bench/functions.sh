#!/usr/bin/env bash
# Function benchmarks: what the Lambda Runtime API host costs per invocation, and how
# fast the Rust reference function drains a backlog compared with the built-in function.
# Each line drains one shard's backlog (filled beforehand through PutRecords) through
# a mapping from TRIM_HORIZON, over the real server; see examples/function_bench.rs.
#
# Usage: bench/functions.sh
# Needs: python3 with awslambdaric (pip install -r tests/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example function_bench
cargo build --release --quiet -p kinesis-to-dynamodb --bin bootstrap --example empty
BENCH=target/release/examples/function_bench

echo "## Per invocation, batch size 1 (one shard, one invocation at a time)"
$BENCH 5000 1 builtin | tail -1
$BENCH 5000 1 runtime "$PWD/target/release/examples/empty" | tail -1
WORKDIR=$PWD/bench/functions $BENCH 2000 1 runtime python3 -m awslambdaric empty_handler.handler | tail -1

echo
echo "## Drain, batch size 100"
$BENCH 100000 100 builtin | tail -1
$BENCH 100000 100 runtime "$PWD/target/release/bootstrap" | tail -1
WORKDIR=$PWD/crates/spillway/tests/functions $BENCH 20000 100 runtime \
  python3 -m awslambdaric reference_handler.lambda_handler | tail -1
