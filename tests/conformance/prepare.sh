#!/usr/bin/env bash
# Installs kinesalite's and dynalite's npm dependencies into the conformance cache (where
# ../shared/conformance/run.sh keeps them), so that tests can also run those projects as
# engines: tests/workers.rs runs spillway workers over kinesalite and dynalite.
#   tests/conformance/prepare.sh        exits 0 and prints the cache when both are ready
# SPILLWAY_CONFORMANCE_DIR: where the suites are; SPILLWAY_CONFORMANCE_CACHE: the cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
suites=${SPILLWAY_CONFORMANCE_DIR:-$root/../shared/conformance}
cache_root=${SPILLWAY_CONFORMANCE_CACHE:-${TMPDIR:-/tmp}/spillway-conformance}
command -v npm >/dev/null || { echo "prepare: no npm" >&2; exit 1; }
for suite in kinesalite dynalite; do
  src="$suites/$suite"
  [ -d "$src/test" ] || { echo "prepare: no $suite at $src" >&2; exit 1; }
  cache="$cache_root/$suite"
  if [ ! -f "$cache/.ready" ] || [ "$src/test/helpers.js" -nt "$cache/.ready" ]; then
    rm -rf "$cache"; mkdir -p "$cache"; cp -R "$src/." "$cache/"
    (cd "$cache" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
    touch "$cache/.ready"
  fi
done
echo "$cache_root"
