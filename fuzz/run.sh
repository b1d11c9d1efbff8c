#!/usr/bin/env bash
# Builds and runs every fuzz target for SECONDS each (default 60); fails if any target
# finds a crash. Needs cargo-fuzz (installed when missing). The machine has a stable
# toolchain only: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags, and no
# sanitizer is used (`-s none`; the crate forbids unsafe code), which keeps the build cheap.
#   fuzz/run.sh [SECONDS]
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=(dynamodb_expr dynamodb_request kinesis_request ingest_route runtime_api)
start=$(date +%s)
cargo fuzz build -s none
built=$(date +%s)
echo "build: $((built - start)) s"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # A copy of the seeds to grow, so the committed corpus stays the handful of seeds.
  work=$(mktemp -d)
  cp "corpus/$t"/* "$work"/ 2>/dev/null || true
  echo "== $t (${seconds}s)"
  log=$(mktemp)
  if cargo fuzz run -s none "$t" "$work" -- -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
    grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
  else
    failed+=("$t")
    # The panic message and the input libFuzzer saved.
    grep -E -A3 "panicked|deadly signal|^SUMMARY|artifact_prefix|Test unit written" "$log" || tail -n 40 "$log"
  fi
  rm -rf "$work" "$log"
done
echo "total: $(( $(date +%s) - start )) s (build $((built - start)) s)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "no crashes"
