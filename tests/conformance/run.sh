#!/usr/bin/env bash
# Runs the conformance suites other projects checked against real AWS (kinesalite's for
# Kinesis, dynalite's for DynamoDB; ../shared/conformance) against a fresh spillway each,
# started with AWS-like lifecycle delays (CREATING/DELETING/UPDATING for 500 ms), and
# fails if a suite passes fewer cases than its floor in tests/conformance/floors.
# Raise the floors as spillway answers more like AWS; DEVIATIONS.md names every case
# that still fails and why.
#   tests/conformance/run.sh [SPILLWAY_BINARY]     (default: target/debug/spillway)
# SPILLWAY_CONFORMANCE_DIR overrides where the suites are. Needs node and npm (the
# suites' dependencies are installed by their run.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
suites=${SPILLWAY_CONFORMANCE_DIR:-$root/../shared/conformance}
bin=${1:-$root/target/debug/spillway}
if [ ! -x "$suites/run.sh" ]; then
  echo "conformance suites not found at $suites (set SPILLWAY_CONFORMANCE_DIR); not run" >&2
  exit 0
fi
command -v npm >/dev/null || { echo "conformance needs node and npm (apt-get install nodejs npm)" >&2; exit 1; }
. "$root/tests/conformance/floors"
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# run_suite NAME FLOOR [mocha args...]: a fresh server, the suite, the floor check.
failed=0
run_suite() {
  local name=$1 floor=$2; shift 2
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local dir="$work/$name"; mkdir -p "$dir"
  cat > "$dir/spillway.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data_dir = "$dir/data"
[kinesis]
create_delay_ms = 500
delete_delay_ms = 500
update_delay_ms = 500
[dynamodb]
create_delay_ms = 500
delete_delay_ms = 500
update_delay_ms = 500
TOML
  "$bin" serve --config "$dir/spillway.toml" > "$dir/out" 2> "$dir/log" &
  pid=$!
  for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
  local started=$(date +%s) passed=0 failed_cases=0 f
  # One mocha process per test file: a suite test that fails in several parallel
  # callbacks can make mocha abandon the rest of its run, and that must cost one file,
  # not the whole measure. --exit: node keeps idle keep-alive sockets to the server open.
  for f in "$suites/${name%%-*}/test/"*.js; do
    case "$(basename "$f")" in helpers.js|bench.js) continue ;; esac
    "$suites/run.sh" "${name%%-*}" "$port" --exit "$@" "test/$(basename "$f")" > "$dir/report-$(basename "$f")" 2>&1 || true
    local line; line=$(tail -n 1 "$dir/report-$(basename "$f")")
    passed=$(( passed + $(echo "$line" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' || echo 0) ))
    failed_cases=$(( failed_cases + $(echo "$line" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' || echo 0) ))
    cat "$dir/report-$(basename "$f")" >> "$dir/report"
  done
  local line="$passed passed, $failed_cases failed"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$name: spillway died during the suite:"; tail -n 30 "$dir/log"; failed=1
  fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=
  echo "$name: $line (floor $floor) in $(( $(date +%s) - started )) s"
  if [ "$passed" -lt "$floor" ]; then
    echo "$name: below its floor; the failures:"; grep -E -A4 '^  [0-9]+\) ' "$dir/report" | head -n 200
    failed=1
  fi
}

run_suite kinesalite "$KINESALITE_FLOOR"
run_suite dynalite-functionality "$DYNALITE_FUNCTIONALITY_FLOOR" --grep functionality
run_suite dynalite-all "$DYNALITE_ALL_FLOOR"
exit $failed
